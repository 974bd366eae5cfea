"""Per-node commands as one Slurm step: what the SSH launcher does with one `conn.run`
per node (a command, its stdin, a deadline), done by one srun over the allocation.

Each node's command and stdin travel in one JSON bundle (sbcast). On every node a small
runner picks its entry by SLURMD_NODENAME, runs it in its own session under the deadline
(TERM, then KILL `kill_after` seconds later, as `timeout -k` does over SSH), and prints
{rc, stdout, stderr, seconds, timed_out} as numbered tagged lines (probe.parse reads
them). A step srun itself cannot finish in time is cancelled by its name: the bound
holds even when a node stops answering.
"""

from __future__ import annotations

import json
import uuid

from preflight.core.nodetext import one_line
from preflight.launchers import transport
from preflight.launchers.slurm.alloc import Allocation, SlurmError
from preflight.launchers.slurm.probe import CHUNK, NODE_SIDE, bootstrap_python, parse

TAG = "@preflight-step"
OUTPUT_MAX = 1 << 20  # per stream per node: a runaway command cannot flood the login node
GRACE_S = 30  # srun's own start and the bundle's reading, beyond the command's deadline
RUNNER = NODE_SIDE + """import signal, subprocess, time
started = time.monotonic()
child = subprocess.Popen(["sh", "-c", mine["command"]], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
def stop(*_):
    for sig, wait in ((signal.SIGTERM, bundle["kill_after"]), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
            child.wait(wait)
            return
        except (OSError, subprocess.TimeoutExpired):
            pass
signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(143)))
timed_out = False
try:
    out, err = child.communicate(mine["stdin"].encode(), timeout=bundle["timeout"])
except subprocess.TimeoutExpired:
    timed_out = True
    stop()
    out, err = child.communicate()
cap = bundle["cap"]
emit(sys.stdout, json.dumps({"rc": 124 if timed_out else child.returncode,
                             "timed_out": timed_out,
                             "seconds": round(time.monotonic() - started, 3),
                             "stdout": out[-cap:].decode(errors="replace"),
                             "stderr": err[-cap:].decode(errors="replace")}))
"""


def per_node(job: Allocation, work: dict[str, tuple[str, str]], timeout: float,
             kill_after: int = 2) -> dict[str, transport.Result | str]:
    """node -> its Result, or why there is none. `work` maps node -> (command, stdin)."""
    if not work:
        return {}
    token = f"{job.name}-step-{uuid.uuid4().hex[:8]}"
    path = f"/tmp/{token}.json"
    bundle = {"tag": TAG, "chunk": CHUNK, "timeout": timeout, "kill_after": kill_after,
              "cap": OUTPUT_MAX, "nodes": {n: {"command": c, "stdin": s or ""}
                                           for n, (c, s) in work.items()}}
    try:
        job.broadcast(json.dumps(bundle).encode(), path)
    except SlurmError as exc:
        return dict.fromkeys(work, str(exc))
    names = list(work)
    limit = timeout + kill_after + GRACE_S
    command = bootstrap_python((), RUNNER, path, again_on_failure=False)
    done = job.step(names, command, limit, label=token)
    if done.timed_out:
        job.cancel_steps(token)
    docs = parse(done.stdout, TAG)
    out: dict[str, transport.Result | str] = {}
    for name, (command, _stdin) in work.items():
        doc = docs.get(name)
        if _shaped(doc):
            out[name] = transport.Result(command, doc["rc"], doc["stdout"], doc["stderr"],
                                         float(doc["seconds"]), bool(doc["timed_out"]))
        elif done.timed_out:
            out[name] = f"the Slurm step gave no answer from {name} within {limit:g} s; " \
                        "cancelled"
        else:
            said = [ln for ln in done.stderr.splitlines() if name in ln or "error" in ln]
            out[name] = f"the Slurm step gave no answer from {name}" + (
                f": {one_line(said[-1], 300)}" if said else f" (srun exited {done.rc})")
    return out


def _shaped(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("rc"), int) and \
        isinstance(doc.get("stdout"), str) and isinstance(doc.get("stderr"), str) and \
        isinstance(doc.get("seconds"), int | float) and isinstance(doc.get("timed_out"), bool)

