"""Per-node and collective text for summary.md and the console: what the checks found,
rendered (checks only decide)."""

from __future__ import annotations

from preflight.checks import cuda
from preflight.facts import contract


def one_line(name: str, facts: dict) -> str:
    """[worker-1] torch 2.0.1, CUDA: True, 8 x A100 (the familiar one-liner, per node)."""
    if not facts["reach"]["ok"]:
        return f"[{name}] unreachable"
    cause = contract.broken_cause(facts, ("runtime", "gpu"))
    if cause:
        return f"[{name}] {cause}"
    torch = cuda.torch_facts(facts)
    if torch is None:
        return f"[{name}] torch: not importable"
    models = cuda.stack_of(facts)["GPU models"]
    gpus = models if models != "none" else (
        f"{torch['device_count']} GPU(s)" if torch["device_count"] else "no GPU")
    return f"[{name}] torch {torch['version']}, CUDA: {torch['cuda_available']}, {gpus}"


def busbw_table(outcome: dict) -> str:
    """nccl-tests style: size, time, algbw, busbw (rank 0's view)."""
    if not outcome.get("sweep"):
        return ""
    lines = [f"all_reduce over {outcome['world']} nodes ({outcome['backend']}):", "",
             "| bytes | time (us) | algbw (GB/s) | busbw (GB/s) |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['bytes']} | {r['time_us']} | {r['algbw_gbps']:.4f} | {r['busbw_gbps']:.4f} |"
              for r in outcome["sweep"]]
    return "\n".join(lines)


def scheduler_lines(actions: dict) -> list[str]:
    """For summary.md and the HTML: what was (or would be) drained and resumed."""
    if actions.get("error"):
        return [f"Slurm not updated: {actions['error']}"]
    out = [f"{'drained' if a['done'] else 'would drain'} {a['node']}: {a['reason']}"
           for a in actions["drain"]]
    out += [f"{'resumed' if a['done'] else 'would resume'} {a['node']} (was: {a['reason']})"
            for a in actions["resume"]]
    return out + [f"left alone {a['node']}: {a['why']}" for a in actions["left"]]


def folded_skips(results: list[dict]) -> list[tuple[str, str, str]]:
    """Skips grouped by check and reason, the nodes folded into a range: (check, nodes,
    reason). A reason names its node ("node-3: clocks not checked: ..."): that name is
    taken out, so one reason covers every node it holds for.

    >>> folded_skips([{"outcome": "skipped", "check": "t", "node": f"n{i}",
    ...                "message": f"n{i}: not checked: no GPUs"} for i in (1, 2, 3)])
    [('t', 'n[1-3]', 'not checked: no GPUs')]
    """
    from collections import defaultdict

    from ClusterShell.NodeSet import NodeSet
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in results:
        if r["outcome"] != "skipped":
            continue
        reason, node = r["message"].strip(), r["node"]
        if node != "cluster":
            reason = reason.removeprefix(f"{node}: ").replace(node, "the node")
        groups[(r["check"], reason)].append(node)
    return [(check, str(NodeSet.fromlist(nodes)), reason)
            for (check, reason), nodes in sorted(groups.items())]
