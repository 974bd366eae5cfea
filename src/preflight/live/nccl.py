"""The cross-node collective test: one torchrun per node, through the run's launcher (an
SSH command per node, or one step of the run's Slurm job).

Bounded three ways: the rendezvous (--rdzv-conf timeout), each collective
(init_process_group timeout) and the whole run (the remote `timeout`, after which every
process carrying this run's token is killed and its temp folder removed).
Each node's processes carry their own mark (token + rank): a node cleaned while others
still run must not touch theirs, even where nodes share one PID space (the test bed).
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from preflight import remote
from preflight.config.inventory import Cluster, Node
from preflight.core.progress import Progress
from preflight.launchers.base import Launcher, Result
from preflight.launchers.targets import resolve

MARK = "PREFLIGHT_RESULT "
KILL_AFTER_S = 10  # torchrun needs a moment to pass SIGTERM on to its workers
CLEAN_S = 20


@dataclass(frozen=True)
class Plan:
    nodes: tuple[Node, ...]  # rank order; nodes[0] hosts the rendezvous
    port: int
    min_bytes: int
    max_bytes: int
    iterations: int
    warmup: int


def backend(cluster: Cluster, nodes) -> str:
    if cluster.nccl.backend != "auto":
        return cluster.nccl.backend
    return "nccl" if all(n.gpus > 0 for n in nodes) else "gloo"


def mark(token: str, rank: int) -> str:
    return f"{token}-r{rank}"


def command(cluster: Cluster, plan: Plan, rank: int, token: str) -> str:
    node, settings = plan.nodes[rank], cluster.nccl
    master = resolve(cluster, plan.nodes[0]).hostname
    folder = f"/tmp/{mark(token, rank)}"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(settings.env.items()))
    chosen = backend(cluster, plan.nodes)
    torchrun = [f"{node.env_prefix}/bin/python", "-m", "torch.distributed.run",
                "--nnodes", str(len(plan.nodes)), "--nproc-per-node", str(max(1, node.gpus)),
                "--node-rank", str(rank), "--master-addr", master,
                "--master-port", str(plan.port), "--max-restarts", "0",
                "--rdzv-conf", f"timeout={int(settings.rdzv_timeout)}",
                "worker.py", "--backend", chosen, "--timeout", str(settings.collective_timeout),
                "--min-bytes", str(plan.min_bytes), "--max-bytes", str(plan.max_bytes),
                "--factor", str(settings.factor), "--iters", str(plan.iterations),
                "--warmup", str(plan.warmup), "--run-id", mark(token, rank)]
    return (f"D={shlex.quote(folder)}; mkdir -p \"$D\" && trap 'rm -rf \"$D\"' EXIT && "
            "trap 'exit 143' INT TERM HUP && cat > \"$D/worker.py\" && cd \"$D\" && "
            f"env {env} {' '.join(shlex.quote(a) for a in torchrun)}")


def run(cluster: Cluster, launcher: Launcher, plan: Plan) -> dict:
    """Run the plan through the launcher (one torchrun per node, each under the deadline
    on its node), then sweep every node of what carries the run's marks; returns per-node
    outcomes with a reason for every failure. What escapes both, a Slurm Epilog ends."""
    token = f"preflight-nccl-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    names = [n.name for n in plan.nodes]
    worker = remote.source("nccl_worker.py")
    work = {n.name: (command(cluster, plan, rank, token), worker)
            for rank, n in enumerate(plan.nodes)}
    sweep = {n.name: (clean_command(mark(token, rank)), "")
             for rank, n in enumerate(plan.nodes)}
    label = launcher.label(names)
    with Progress(f"collective ({len(names)} nodes, {label})", 1) as shown:
        got, swept = shown.track("torchrun", lambda: launcher.run_and_sweep(
            work, cluster.nccl.deadline, sweep, CLEAN_S, kill_after=KILL_AFTER_S,
            at_once=True))
    raw = [_raw(got[n]) if isinstance(got[n], Result) else {"reach": got[n]} for n in names]
    cleaned = {name: "clean" if isinstance(r, Result) and r.rc == 0 else
               f"not cleaned: {r if isinstance(r, str) else r.stderr.strip()[-300:]}"
               for name, r in swept.items()}
    outcome = diagnose(plan, raw, cluster)
    outcome.update(seconds=round(time.monotonic() - started, 2), token=token,
                   backend=backend(cluster, plan.nodes), cleanup=cleaned, launcher=label)
    return outcome


def _raw(done: Result) -> dict:
    return {"rc": done.rc, "timed_out": done.timed_out, "stdout": done.stdout,
            "stderr": done.stderr[-6000:], "seconds": round(done.seconds, 2)}


def clean_command(marked: str) -> str:
    """Kill whatever still carries the node's mark (torchrun starts workers in new
    sessions, out of reach of the remote `timeout`) and remove its folder."""
    pattern = shlex.quote(f"{marked}( |$)")  # -r1 must not match -r10
    return f"pkill -KILL -f {pattern}; rm -rf /tmp/{marked}; true"


def results_of(stdout: str) -> list[dict]:
    return [json.loads(line[len(MARK):]) for line in stdout.splitlines()
            if line.startswith(MARK)]


def diagnose(plan: Plan, raw: list[dict], cluster: Cluster) -> dict:
    master = plan.nodes[0].name
    address = f"{resolve(cluster, plan.nodes[0]).hostname}:{plan.port}"
    nodes = {}
    waited = cluster.nccl.rdzv_timeout * EARLY
    for node, got in zip(plan.nodes, raw, strict=True):
        ranks = results_of(got.get("stdout", ""))
        nodes[node.name] = {"ranks": ranks, "ok": False,
                            "reason": _early(got, ranks, waited) or
                            _reason(node.name, got, ranks, master, address)}
        nodes[node.name]["ok"] = nodes[node.name]["reason"] is None
    _blame_rendezvous(nodes, master)
    rank0 = next((r for n in nodes.values() for r in n["ranks"] if r.get("rank") == 0), None)
    return {"ok": all(n["ok"] for n in nodes.values()), "nodes": nodes,
            "world": len(plan.nodes), "master": address,
            "sweep": rank0["sweep"] if rank0 else []}


EARLY = 0.5  # of the rendezvous timeout: a node that failed sooner never waited for anyone
EXITED_EARLY = "exited before joining"
# what a process that waited for others says: it is blocked, not a culprit
WAITING = re.compile(r"clients joined|DistStoreError|Rendezvous\w*(Timeout|Closed)|timed out|"
                     r"Timeout|Connection (refused|reset)", re.I)


def _early(got: dict, ranks: list[dict], waited: float) -> str | None:
    """Why a node is the culprit that never joined: its torchrun, or its worker, failed
    well before the rendezvous could have timed out, and not from waiting on a peer."""
    if "reach" in got or got["timed_out"] or got["rc"] == 0 or got["seconds"] >= waited:
        return None
    if any(r.get("stage") != "init" for r in ranks):
        return None  # it joined: a later failure is judged as such
    errors = [r.get("error") or "" for r in ranks]
    if any(WAITING.search(e) for e in errors):
        return None
    if errors:
        return f"{EXITED_EARLY}: its worker failed: {errors[0][:300]}"
    if WAITING.search(got["stderr"]):
        return None
    return f"{EXITED_EARLY}: torchrun exited {got['rc']} after {got['seconds']:.1f} s: " + \
        (_last_error(got["stderr"], any_line=True) or "no message")


def _reason(name: str, got: dict, ranks: list[dict], master: str, address: str) -> str | None:
    if "reach" in got:
        return got["reach"]
    if got["timed_out"]:
        return f"still running at the deadline ({got['seconds']:.0f} s); killed"
    bad = [r for r in ranks if not r["ok"]]
    if got["rc"] == 0 and ranks and not bad:
        return None
    err = got["stderr"]
    if re.search(r"DistNetworkError|Connection refused|timed out.*connect|connect.*timed out",
                 err) and name != master:
        return f"could not reach the rendezvous at {address} on {master} (blocked port, " \
               "wrong address or a down link)"
    joined = re.search(r"(\d+)/(\d+) clients joined", err)
    if joined:
        return f"rendezvous timed out: {joined.group(1)}/{joined.group(2)} nodes joined"
    if "DistStoreError" in err and not ranks:
        return "rendezvous did not complete"
    if bad:
        first = bad[0]
        what = first.get("error") or ", ".join(k for k, v in first["checks"].items() if not v)
        return f"rank {first['rank']} failed at {first['stage']}: {what}"
    return f"torchrun exited {got['rc']}: " + (_last_error(err) or "no result printed")


def _last_error(stderr: str, any_line: bool = False) -> str:
    """The last line of stderr that names an error (or, with any_line, the last line)."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    said = [ln for ln in lines if "Error" in ln or "error" in ln] or (lines if any_line else [])
    return said[-1][:300] if said else ""


NEVER_JOINED = ("could not reach the rendezvous", "unreachable", "lost during the run",
                EXITED_EARLY)


def _blame_rendezvous(nodes: dict, master: str) -> None:
    """Nodes that waited for a rendezvous that never completed name the ones that never
    joined; those are the nodes to look at. A master that exited early takes its
    workers' "could not reach the rendezvous" with it: they are blocked, not culprits."""
    if (nodes.get(master, {}).get("reason") or "").startswith(EXITED_EARLY):
        for name, verdict in nodes.items():
            if name != master and (verdict["reason"] or "").startswith(NEVER_JOINED[0]):
                verdict["reason"] += f"; never joined: {master}"
                verdict["blocked_by"] = [master]
    absent = [n for n, v in nodes.items() if v["reason"] and
              v["reason"].startswith(NEVER_JOINED) and "blocked_by" not in v]
    if not absent:
        return
    for verdict in nodes.values():
        reason = verdict["reason"] or ""
        if "blocked_by" in verdict:
            continue
        if "joined" in reason or reason == "rendezvous did not complete" or (
                not reason.startswith(NEVER_JOINED) and WAITING.search(reason)):
            verdict["reason"] = f"{reason}; never joined: {', '.join(absent)}"
            verdict["blocked_by"] = absent  # waited on the culprits: not a failed node


def plan_all(cluster: Cluster, nodes: list[Node]) -> Plan:
    ordered = sorted(nodes, key=lambda n: n.role != "master")
    s = cluster.nccl
    return Plan(tuple(ordered), s.master_port, s.min_bytes, s.max_bytes, s.iterations, s.warmup)


def rounds(names: list[str]) -> list[list[tuple[str, str]]]:
    """Round-robin pairs (circle method): each node in at most one pair per round."""
    ring = list(names) + ([None] if len(names) % 2 else [])
    out = []
    for _ in range(len(ring) - 1):
        pairs = [(ring[i], ring[-1 - i]) for i in range(len(ring) // 2)]
        out.append([p for p in pairs if None not in p])
        ring = [ring[0], ring[-1], *ring[1:-1]]
    return out


def pairwise(cluster: Cluster, launcher: Launcher, nodes: list[Node]) -> dict:
    """Every pair once, in rounds; names the node (all its pairs bad) or link (one pair)."""
    by_name = {n.name: n for n in nodes}
    s = cluster.nccl
    pairs: dict[str, dict] = {}
    for schedule in rounds(sorted(by_name)):
        def one(item):
            index, (a, b) = item
            plan = Plan((by_name[a], by_name[b]), s.master_port + 1 + index, s.pairwise_bytes,
                        s.pairwise_bytes, s.iterations, s.warmup)
            return f"{a}<->{b}", run(cluster, launcher, plan)
        with ThreadPoolExecutor(max(1, len(schedule))) as pool:
            pairs.update(pool.map(one, enumerate(schedule)))
    return {"pairs": {k: _pair_summary(v) for k, v in pairs.items()},
            "verdict": blame(pairs)}


def _pair_summary(result: dict) -> dict:
    busbw = result["sweep"][-1]["busbw_gbps"] if result["sweep"] else None
    reasons = [f"{n}: {v['reason']}" for n, v in result["nodes"].items() if v["reason"]]
    return {"ok": result["ok"], "busbw_gbps": busbw, "reasons": reasons}


def blame(pairs: dict[str, dict]) -> dict[str, str]:
    """node -> why it is suspect. A node whose every pair is failed or slow (< half the
    median busbw) is named; a single bad pair names the link."""
    speeds = sorted(p["sweep"][-1]["busbw_gbps"] for p in pairs.values()
                    if p["ok"] and p["sweep"])
    median = speeds[len(speeds) // 2] if speeds else 0

    def bad(p):
        return not p["ok"] or not p["sweep"] or p["sweep"][-1]["busbw_gbps"] < median / 2
    names = sorted({n for key in pairs for n in key.split("<->")})
    verdict = {}
    for name in names:
        mine = {k: p for k, p in pairs.items() if name in k.split("<->")}
        if mine and all(bad(p) for p in mine.values()) and len(mine) > 1:
            shown = ", ".join(f"{k} {_speed(p)}" for k, p in mine.items())
            verdict[name] = f"every pair with {name} is failed or slow ({shown}; median " \
                            f"{median:.3f} GB/s)"
    for key, p in pairs.items():
        if bad(p) and not any(n in verdict for n in key.split("<->")):
            verdict[key] = f"link {key} is failed or slow ({_speed(p)}; median {median:.3f} GB/s)"
    return verdict


def _speed(pair: dict) -> str:
    return f"{pair['sweep'][-1]['busbw_gbps']:.3f} GB/s" if pair["ok"] and pair["sweep"] \
        else "failed"
