"""Facts of every node from one `srun` step: the same probe as over SSH, fed to the same
checks. The probe and each node's arguments travel as one bundle, broadcast with sbcast;
a small dispatcher on each node picks its own arguments by SLURMD_NODENAME, runs the
probe and prints its JSON in numbered lines tagged with the node's name: srun cuts long
output lines into pieces (and --label labels each piece), so whole short lines are what
survives intact, in whatever order the tasks' output interleaves.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time
import uuid

from preflight import remote
from preflight.config.inventory import Cluster, Node
from preflight.core.errors import UserError
from preflight.core.nodetext import clean, depth_ok
from preflight.launchers import probe as probe_spec
from preflight.launchers import ssh
from preflight.launchers.slurm import runjob
from preflight.launchers.slurm.alloc import Allocation, SlurmError, node_states
from preflight.launchers.slurm.login import LoginShell

TAG = "@preflight-facts"
CHUNK = 800  # characters of JSON per output line: well under srun's line pieces
# How every node-side script of a step starts: its bundle, its own entry in it (by the
# name slurmd gives the node) and emit(), which prints text as numbered
# "TAG node i/n chunk" lines.
NODE_SIDE = """import json, os, sys
bundle = json.load(open(sys.argv[1]))
name = os.environ.get("SLURMD_NODENAME", "")
mine = bundle["nodes"].get(name)
if mine is None:
    sys.stderr.write("node %s is not in this step\\n" % name)
    sys.exit(3)
def emit(out, text):
    size = bundle["chunk"]
    count = max(1, (len(text) + size - 1) // size)
    for i in range(count):
        out.write("%s %s %d/%d %s\\n" % (bundle["tag"], name, i + 1, count,
                                          text[i * size:(i + 1) * size]))
    out.flush()
"""
# The probe on the node: its arguments, the probe (as the SSH launcher sends it) with its stdout
# caught, then the JSON emitted.
DISPATCH = NODE_SIDE + """import io
mine["runtime_script"] = bundle["runtime"] if mine.pop("runtime") else None
code = compile("ARGS = %r\\n" % (mine,) + bundle["probe"], "<probe>", "exec")
real, sys.stdout = sys.stdout, io.StringIO()
try:
    exec(code, {"__name__": "__main__"})
finally:
    text, sys.stdout = sys.stdout.getvalue(), real
emit(real, text)
"""


def line_of(tag: str) -> re.Pattern:
    """A numbered line of tag (srun_options may add --label's "  3: " before it)."""
    return re.compile(r"^(?:\s*\d+: )?" + re.escape(tag) + r" (\S+) (\d+)/(\d+) (.*)$")


def bundle(cluster: Cluster, nodes: list[Node], runtime: bool) -> bytes:
    per_node = {}
    logins = probe_spec.login_plan(cluster, nodes)
    for node in nodes:
        script = probe_spec.probe_args(node, runtime=False,
                                       **probe_spec.cluster_args(cluster, node, logins))
        per_node[node.name] = {**script, "runtime": runtime}
    return json.dumps({"tag": TAG, "chunk": CHUNK, "probe": remote.probe_source(),
                       "runtime": remote.source("runtime.py"), "nodes": per_node}).encode()


def bootstrap(nodes: list[Node], path: str) -> str:
    """The step's command: the first python that runs the dispatcher (Miniconda's base
    first, as over SSH), then the bundle removed."""
    return bootstrap_python(tuple(f"{n.miniconda}/bin/python" for n in nodes), DISPATCH, path)


def bootstrap_python(first: tuple[str, ...], code: str, path: str, *,
                     again_on_failure: bool = True) -> str:
    """Run `code` with the bundle's path as its argument under the first python that
    works (`first`, then the system's), then remove the bundle. Without again_on_failure
    only a python that cannot start (126/127) makes way for the next: work that ran
    and failed, or was stopped, is never started twice."""
    pythons = dict.fromkeys([*first, *probe_spec.PROBE_PYTHONS])
    candidates = " ".join(shlex.quote(p) for p in pythons)
    again = "" if again_on_failure else ' [ $rc -eq 126 ] || [ $rc -eq 127 ] || break;'
    return (f"F={shlex.quote(path)}; D={shlex.quote(code)}; rc=127; for p in {candidates}; "
            'do if command -v "$p" >/dev/null 2>&1; then "$p" -I -S -c "$D" "$F" && '
            '{ rc=0; break; }; rc=$?;' + again + ' fi; done; rm -f "$F"; exit $rc')


def parse(stdout: str, tag: str = TAG) -> dict[str, dict]:
    """node -> its probe document, reassembled from its numbered lines. A node whose
    lines are incomplete or not JSON is left out (its error says the step gave nothing)."""
    parts: dict[str, dict[int, str]] = {}
    totals: dict[str, int] = {}
    line_re = line_of(tag)
    for line in stdout.splitlines():
        found = line_re.match(line)
        if found is None:
            continue
        node, index, total, text = found.group(1), int(found.group(2)), \
            int(found.group(3)), found.group(4)
        if totals.get(node) != total:  # a second python's run replaces the first's
            parts[node], totals[node] = {}, total
        parts[node][index] = text
    docs = {}
    for node, pieces in parts.items():
        if len(pieces) != totals[node]:
            continue
        try:
            doc = json.loads("".join(pieces[i] for i in range(1, totals[node] + 1)))
        except (ValueError, KeyError, RecursionError):
            continue
        if isinstance(doc, dict) and depth_ok(doc):
            docs[node] = doc
    return docs


def gather(cluster: Cluster, nodes: list[Node], runtime: bool = True,
           keep: runjob.Hold | None = None) -> dict[str, dict]:
    """Facts of every node, in the shape every launcher gives (with `reach`). With `keep`,
    the allocation that ran the probe is left held on it (the run's job, runjob.py)."""
    started = time.monotonic()
    out: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        login = stack.enter_context(LoginShell(cluster))
        if keep is not None:
            keep.stack.enter_context(stack.pop_all())  # the login shell outlives the gathering
        try:
            states = node_states(login, [n.name for n in nodes])
        except SlurmError as exc:  # no node states, no Slurm launcher: stop in one line
            raise UserError(f"launcher slurm: {exc}") from None
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
            out.update(_probe(cluster, login, usable, runtime, started=started, keep=keep))
    if ours:
        over_ssh = ssh.SshLauncher(cluster).gather(ours, runtime)
        for name, found in over_ssh.items():
            found["reach"]["launcher"] = f"ssh (Slurm: {states[name].state}, drained by us)"
        out.update(over_ssh)
    return {n.name: out[n.name] for n in nodes}


def _probe(cluster: Cluster, login: LoginShell, nodes: list[Node], runtime: bool, *,
           started: float, keep: runjob.Hold | None) -> dict[str, dict]:
    """Allocate, broadcast, run the step. A node Slurm names as unreachable (sbcast or
    step launch) gets that error, and the others are tried again without it."""
    out: dict[str, dict] = {}
    pending = list(nodes)
    for _attempt in range(3):
        pending = _attempt_once(cluster, login, pending, runtime=runtime, started=started,
                                out=out, keep=keep)
        if not pending:
            break
    for node in pending:
        out.setdefault(node.name, _unreached("Slurm kept failing to start the probe there",
                                             started))
    return out


def _attempt_once(cluster: Cluster, login: LoginShell, nodes: list[Node], *, runtime: bool,
                  started: float, out: dict, keep: runjob.Hold | None) -> list[Node]:
    """One allocation's try; returns the nodes to try again (none when nothing helps).
    The allocation of the try that needs no other is kept on `keep` (when given)."""
    token = f"preflight-{uuid.uuid4().hex[:10]}"
    path = f"/tmp/{token}.json"
    timeout = min(cluster.slurm.step_timeout,
                  max(probe_spec.probe_bound(cluster, n)[0] for n in nodes) + 30)
    with contextlib.ExitStack() as stack:
        try:
            job = stack.enter_context(Allocation(login, cluster, [n.name for n in nodes], token))
        except SlurmError as exc:  # no allocation at all: trying again would not help
            out.update({n.name: _unreached(str(exc), started) for n in nodes})
            return []
        try:
            job.broadcast(bundle(cluster, nodes, runtime), path)
        except SlurmError as exc:
            return _without_named(nodes, str(exc), started, out)
        sent = time.time()
        done = job.step([n.name for n in nodes], bootstrap(nodes, path), timeout)
        window = {"sent": sent, "received": time.time()}  # the step's, for every node
        docs = parse(done.stdout)
        for node in nodes:
            if node.name in docs:
                out[node.name] = _reached(docs[node.name], started, job.job)
                out[node.name]["reach"].update(window)
        failed = [n for n in nodes if n.name not in docs]
        if done.timed_out:
            out.update({n.name: _unreached(f"Slurm step on {n.name}: no facts within "
                                           f"{timeout:g} s", started) for n in failed})
            again = []
        else:
            again = _without_named(failed, done.stderr, started, out) if failed else []
        if keep is not None and not again:
            keep.stack.enter_context(stack.pop_all())
            keep.job = runjob.RunJob(job.job, token, tuple(n.name for n in nodes))
        return again


def _without_named(nodes: list[Node], text: str, started: float, out: dict) -> list[Node]:
    """Nodes an error text names get it as their error; the rest are tried again, unless
    none was named (then every node gets the error: trying again would not help)."""
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()]
    named = {n.name: ln for n in nodes for ln in lines
             if re.search(rf"(?<![\w-]){re.escape(n.name)}(?![\w-])", ln)}
    for node in nodes:
        why = named.get(node.name) or (lines[-1] if lines else text.strip()[-300:]) or \
            "the Slurm step gave no facts for this node"
        if node.name in named or not named:
            out[node.name] = _unreached(f"Slurm could not run the probe on {node.name}: "
                                        f"{why}", started)
    return [n for n in nodes if n.name not in named] if named else []


def _reached(doc: dict, started: float, job: str | None) -> dict:
    return {**doc, "reach": {"ok": True, "reason": None, "executions": 1,
                             "seconds": round(time.monotonic() - started, 3),
                             "launcher": f"slurm job {job}"}}


def _unreached(why: str, started: float) -> dict:
    return {"reach": {"ok": False, "reason": clean(why, 500), "executions": 0,
                      "seconds": round(time.monotonic() - started, 3)}}
