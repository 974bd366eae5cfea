# One rank of the cross-node collective test, started by torchrun on every node.
# Checks all_reduce, all_gather and broadcast exactly, then times all_reduce over a size
# sweep like nccl-tests (-b -e -f -n -w). Prints one line: PREFLIGHT_RESULT {json}.
import argparse
import datetime
import json
import os
import socket
import time
import traceback


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", required=True)
    p.add_argument("--timeout", type=float, required=True)
    p.add_argument("--min-bytes", type=int, default=1024)
    p.add_argument("--max-bytes", type=int, default=1 << 24)
    p.add_argument("--factor", type=int, default=4)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--run-id", default="")  # marks every process of this run for cleanup
    return p.parse_args()


def main():
    args = parse()
    out = {"rank": int(os.environ.get("RANK", "-1")), "host": socket.gethostname(),
           "ok": False, "checks": {}, "sweep": [], "stage": "init"}
    try:
        import torch
        import torch.distributed as dist
        dist.init_process_group(args.backend,
                                timeout=datetime.timedelta(seconds=args.timeout))
        rank, world = dist.get_rank(), dist.get_world_size()
        out.update(rank=rank, world=world)
        device = "cpu"
        if args.backend == "nccl":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = "cuda:%d" % local
        out["stage"] = "correctness"
        out["checks"] = correctness(torch, dist, rank, world, device)
        out["stage"] = "sweep"
        out["sweep"] = sweep(torch, dist, world, device, args)
        out["ok"] = all(out["checks"].values())
        out["stage"] = "done"
        dist.destroy_process_group()
    except Exception as exc:  # reported, not raised: the controller reads every rank
        out["error"] = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:300])
        out["trace"] = traceback.format_exc()[-800:]
    print("PREFLIGHT_RESULT " + json.dumps(out), flush=True)
    os._exit(0 if out["ok"] else 1)


def correctness(torch, dist, rank, world, device):
    value = torch.full((1024,), float(rank + 1), dtype=torch.float64, device=device)
    dist.all_reduce(value)
    gathered = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(gathered, torch.tensor([rank], dtype=torch.int64, device=device))
    flag = torch.tensor([42 if rank == 0 else -1], dtype=torch.int64, device=device)
    dist.broadcast(flag, src=0)
    return {"all_reduce": bool((value == world * (world + 1) / 2).all()),
            "all_gather": [int(t.item()) for t in gathered] == list(range(world)),
            "broadcast": int(flag.item()) == 42}


def sweep(torch, dist, world, device, args):
    rows, size = [], args.min_bytes
    while size <= args.max_bytes:
        tensor = torch.ones(max(1, size // 4), dtype=torch.float32, device=device)
        for _ in range(args.warmup):
            dist.all_reduce(tensor)
        sync(torch, dist, device)
        started = time.perf_counter()
        for _ in range(args.iters):
            dist.all_reduce(tensor)
        sync(torch, dist, device)
        seconds = (time.perf_counter() - started) / args.iters
        algbw = tensor.numel() * 4 / seconds / 1e9
        rows.append({"bytes": tensor.numel() * 4, "time_us": round(seconds * 1e6, 1),
                     "algbw_gbps": round(algbw, 4),
                     "busbw_gbps": round(algbw * 2 * (world - 1) / world, 4)})
        size *= args.factor
    return rows


def sync(torch, dist, device):
    if device != "cpu":
        torch.cuda.synchronize()
    dist.barrier()


if __name__ == "__main__":
    main()
