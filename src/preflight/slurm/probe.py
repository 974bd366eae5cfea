"""Facts of every node from one `srun` step: the same probe as over SSH, fed to the same
checks. The probe and each node's arguments travel as one bundle, broadcast with sbcast;
a small dispatcher on each node picks its own arguments by SLURMD_NODENAME and prints
its name before the probe's JSON, so every document is tagged with the node it came from.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid

from .. import facts, remote, transport
from ..inventory import Cluster, Node
from ..nodetext import clean
from .alloc import Allocation, SlurmError, node_states
from .login import LoginShell

TAG = "@preflight-node "
# Runs on the node: its own arguments from the bundle, then the probe (as facts.py sends it).
DISPATCH = """import json, os, sys
bundle = json.load(open(sys.argv[1]))
name = os.environ.get("SLURMD_NODENAME", "")
sys.stdout.write("%s%s\\n" % (bundle["tag"], name))
sys.stdout.flush()
args = bundle["nodes"].get(name)
if args is None:
    sys.stderr.write("node %s is not in this run\\n" % name)
    sys.exit(3)
args["runtime_script"] = bundle["runtime"] if args.pop("runtime") else None
code = compile("ARGS = %r\\n" % (args,) + bundle["probe"], "<probe>", "exec")
exec(code, {"__name__": "__main__"})
"""
LINE = re.compile(r"^\s*(\d+): ?(.*)$")


def bundle(cluster: Cluster, nodes: list[Node], runtime: bool) -> bytes:
    per_node = {}
    for node in nodes:
        script = facts.probe_args(node, runtime=False, peers=facts.peers_of(cluster, node),
                                  sync=facts.sync_args(cluster, node),
                                  ssh=facts.ssh_args(cluster), jupyter=cluster.jupyter.check)
        per_node[node.name] = {**script, "runtime": runtime}
    return json.dumps({"tag": TAG, "probe": remote.probe_source(),
                       "runtime": remote.source("runtime.py"), "nodes": per_node}).encode()


def bootstrap(nodes: list[Node], path: str) -> str:
    """The step's command: the first python that runs the dispatcher (Miniconda's base
    first, as over SSH), then the bundle removed."""
    pythons = dict.fromkeys([*(f"{n.miniconda}/bin/python" for n in nodes),
                             *facts.PROBE_PYTHONS])
    candidates = " ".join(shlex.quote(p) for p in pythons)
    return (f"F={shlex.quote(path)}; D={shlex.quote(DISPATCH)}; rc=127; for p in {candidates}; "
            'do if command -v "$p" >/dev/null 2>&1; then "$p" -I -S -c "$D" "$F" && '
            '{ rc=0; break; }; rc=$?; fi; done; rm -f "$F"; exit $rc')


def parse(stdout: str) -> dict[str, dict]:
    """node -> its probe document, from srun --label output (last JSON line per task)."""
    tasks: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        found = LINE.match(line)
        if found:
            tasks.setdefault(found.group(1), []).append(found.group(2))
    docs = {}
    for lines in tasks.values():
        names = [ln[len(TAG):].strip() for ln in lines if ln.startswith(TAG)]
        for text in reversed(lines):
            if names and text.startswith("{"):
                try:
                    doc = json.loads(text)
                except ValueError:
                    continue
                if isinstance(doc, dict):
                    docs[names[-1]] = doc
                    break
    return docs


def _why(name: str, stderr: str) -> str:
    mine = [ln for ln in stderr.splitlines() if re.search(rf"\b{re.escape(name)}\b", ln)]
    return mine[-1] if mine else "the Slurm step gave no facts for this node"


def gather(cluster: Cluster, nodes: list[Node], runtime: bool = True) -> dict[str, dict]:
    """Facts of every node, in the shape facts.gather gives (with `reach`)."""
    started = time.monotonic()
    out: dict[str, dict] = {}
    with LoginShell(cluster) as login:
        states = node_states(login, [n.name for n in nodes])
        usable, ours = [], []
        for node in nodes:
            state = states.get(node.name)
            why = "unknown to Slurm (sinfo does not list it)" if state is None else \
                state.unusable
            if state is not None and why and state.reason.startswith(
                    cluster.slurm.drain_prefix):
                ours.append(node)  # drained by us: still checked (over SSH), to resume it
            elif why:
                out[node.name] = _unreached(why, started)
            else:
                usable.append(node)
        if usable:
            out.update(_probe(cluster, login, usable, runtime, started))
    if ours:
        over_ssh = transport.fan_out(ours, lambda n: facts.gather_node(cluster, n, runtime),
                                     cluster.parallelism)
        for name, found in over_ssh.items():
            found["reach"]["launcher"] = f"ssh (Slurm: {states[name].state}, drained by us)"
        out.update(over_ssh)
    return {n.name: out[n.name] for n in nodes}


def _probe(cluster: Cluster, login: LoginShell, nodes: list[Node], runtime: bool,
           started: float) -> dict[str, dict]:
    token = f"preflight-{uuid.uuid4().hex[:10]}"
    path = f"/tmp/{token}.json"
    timeout = max(n.command_timeout for n in nodes) + 30
    try:
        with Allocation(login, cluster, [n.name for n in nodes], token) as job:
            job.broadcast(bundle(cluster, nodes, runtime), path)
            pending, out = list(nodes), {}
            for _attempt in range(2):  # a node that fails to launch is named; the rest rerun
                done = job.step([n.name for n in pending], bootstrap(pending, path), timeout)
                docs = parse(done.stdout)
                for node in pending:
                    if node.name in docs:
                        out[node.name] = _reached(docs[node.name], started, job.job)
                failed = [n for n in pending if n.name not in docs]
                launch = [n for n in failed if "launch" in _why(n.name, done.stderr).lower()]
                for node in failed:
                    why = "timed out" if done.timed_out else _why(node.name, done.stderr)
                    out[node.name] = _unreached(f"Slurm step on {node.name}: {why}", started)
                pending = [n for n in failed if n not in launch] if launch else []
                if not pending or len(pending) == len(nodes):
                    break
                job.broadcast(bundle(cluster, pending, runtime), path)
            return out
    except SlurmError as exc:
        return {n.name: _unreached(str(exc), started) for n in nodes}


def _reached(doc: dict, started: float, job: str | None) -> dict:
    return {**doc, "reach": {"ok": True, "reason": None, "executions": 1,
                             "seconds": round(time.monotonic() - started, 3),
                             "launcher": f"slurm job {job}"}}


def _unreached(why: str, started: float) -> dict:
    return {"reach": {"ok": False, "reason": clean(why, 500), "executions": 0,
                      "seconds": round(time.monotonic() - started, 3)}}
