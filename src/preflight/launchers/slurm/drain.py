"""Keep failing nodes out of Slurm's queue, as NHC and the cloud GPU health checks do:
`--drain-failed` drains every node that failed a check with a reason that starts with
cluster.yaml's `slurm.drain_prefix` and names the check; `--resume-fixed` resumes only
nodes drained with that prefix that now pass. A node drained by anyone else, or already
down, is left alone. Without the flags nothing changes: the plan is only reported.
"""

from __future__ import annotations

import shlex

from preflight.config.inventory import Cluster
from preflight.core.nodetext import one_line
from preflight.launchers.slurm.alloc import SlurmError, node_states
from preflight.launchers.slurm.login import LoginShell

REASON_MAX = 200  # Slurm keeps the reason in its state; sinfo shows it in one line
OUT_OF_QUEUE = ("drain", "down", "fail", "maint")


def reason(prefix: str, result: dict) -> str:
    """`preflight: test_env_pins_hold: pytorch 2.0.2 (py3.9_cuda11.8_0)`: one line."""
    what = result.get("found") or result.get("message", "").strip().splitlines()[0:1]
    what = what if isinstance(what, str) else (what[0] if what else "")
    return one_line(f"{prefix} {result['check']}: {what}", REASON_MAX).replace('"', "'")


# what ops should do about a failure (checks.findings.SEVERITIES): "investigate" says the
# node may still run, so it never takes a node out of the queue
KEEPS_RUNNING = ("investigate",)


def plan(cluster: Cluster, results: list[dict]) -> dict[str, dict]:
    """node -> {"fail": the first failing result that takes the node out (every failure
    but an "investigate" one) or None, "results": n}."""
    nodes: dict[str, dict] = {}
    for result in results:
        if result["node"] == "cluster":
            continue
        entry = nodes.setdefault(result["node"], {"fail": None, "results": 0})
        entry["results"] += 1
        if result["outcome"] in ("failed", "error") and entry["fail"] is None and \
                result.get("severity") not in KEEPS_RUNNING:
            entry["fail"] = result
    return nodes


def act(cluster: Cluster, results: list[dict], *, drain: bool, resume: bool) -> dict:
    """What to drain and resume; carried out only for the flags given."""
    prefix = cluster.slurm.drain_prefix
    nodes = plan(cluster, results)
    out = {"dry_run": not (drain or resume), "drain": [], "resume": [], "left": [],
           "error": None}
    wanted = {n: reason(prefix, e["fail"]) for n, e in nodes.items() if e["fail"]}
    if out["dry_run"]:
        out["drain"] = [{"node": n, "reason": r, "done": False} for n, r in wanted.items()]
        return out
    try:
        with LoginShell(cluster) as login:
            states = node_states(login, sorted(nodes))
            for name, why in wanted.items():
                state = states.get(name)
                if state is None or state.state.rstrip("*~#").startswith(OUT_OF_QUEUE):
                    seen = state.state if state else "not in Slurm"
                    out["left"].append({"node": name, "why": f"already {seen}"})
                    continue
                done = drain and _scontrol(login, name, f"state=drain reason={shlex.quote(why)}")
                out["drain"].append({"node": name, "reason": why, "done": done})
            for name, entry in nodes.items():
                state = states.get(name)
                if entry["fail"] or state is None or not state.state.startswith("drain"):
                    continue
                if not state.reason.startswith(prefix):
                    out["left"].append({"node": name, "why": f"drained by someone else "
                                                             f"({one_line(state.reason, 100)})"})
                    continue
                done = resume and _scontrol(login, name, "state=resume")
                out["resume"].append({"node": name, "reason": state.reason, "done": done})
    except Exception as exc:  # the verdict stands either way; say why Slurm was not told
        out["error"] = one_line(f"{type(exc).__name__}: {exc}", 300)
    return out


def _scontrol(login: LoginShell, node: str, change: str) -> bool:
    done = login.run(f"scontrol update nodename={shlex.quote(node)} {change}", 30)
    if done.rc != 0:
        raise SlurmError(f"scontrol update {node} {change}: {one_line(done.stderr.strip(), 200)}")
    return True
