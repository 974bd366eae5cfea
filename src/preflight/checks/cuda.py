"""CUDA on each node: torch's view, nvidia-smi's view, the driver, and sameness of the stack."""

from __future__ import annotations

import re
from collections import Counter

from ClusterShell.NodeSet import NodeSet

from preflight.checks import sameness
from preflight.checks.findings import Finding
from preflight.config.envspec import EnvSpec
from preflight.config.inventory import Node
from preflight.facts import contract, nvsmi

# Minimum Linux x86_64 driver per CUDA toolkit release ("Toolkit Driver Version", GA),
# from NVIDIA's CUDA Toolkit Release Notes, Table 3 "CUDA Toolkit and Corresponding Driver
# Versions" (docs.nvidia.com/cuda/cuda-toolkit-release-notes). With minor version
# compatibility (Table 2) a CUDA 11.x runtime also runs on >= 450.80.02 and 12.x on
# >= 525.60.13, without PTX JIT; the harness asks for the full toolkit minimum.
MIN_DRIVER = {
    "10.0": "410.48", "10.1": "418.39", "10.2": "440.33",
    "11.0": "450.36.06", "11.1": "455.23", "11.2": "460.27.03", "11.3": "465.19.01",
    "11.4": "470.42.01", "11.5": "495.29.05", "11.6": "510.39.01", "11.7": "515.43.04",
    "11.8": "520.61.05", "12.0": "525.60.13", "12.1": "530.30.02", "12.2": "535.54.03",
    "12.3": "545.23.06", "12.4": "550.54.14", "12.5": "555.42.02", "12.6": "560.28.03",
    "12.8": "570.26", "12.9": "575.51.03", "13.0": "580.65.06",
}
MINOR_COMPAT = {"11": "450.80.02", "12": "525.60.13"}
CUDA_PACKAGES = ("pytorch-cuda", "cuda-version", "cudatoolkit", "cuda-toolkit",
                 "cuda-runtime")


def torch_facts(facts: dict) -> dict | None:
    runtime = facts.get("runtime") or {}
    return runtime.get("torch")


def smi(facts: dict) -> dict | None:
    """nvidia-smi's report, parsed; None when the node has no nvidia-smi."""
    gpu = facts.get("gpu") or {}
    if not gpu.get("smi"):
        return None
    try:
        return nvsmi.parse(gpu["smi"])
    except nvsmi.SmiError as exc:
        return {"error": str(exc), "gpus": [], "driver": None, "cuda": None}


def _no_torch(node: Node, facts: dict) -> list[Finding]:
    runtime = facts["runtime"]
    error = runtime.get("torch_error") or runtime.get("error") or "no runtime facts"
    return [Finding(node.name, "torch runtime", "torch imports in the env", cause(error),
                    f"the first part is the root cause; the whole traceback: "
                    f"{node.env_prefix}/bin/python -c 'import torch' on the node")]


CAUSED_BY = re.compile(r"\s*\(caused by (.+)\)\s*$")  # the runtime probe's one-line chain
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b")


def cause(text: str) -> str:
    r"""One line from an error: a chained traceback's first exception (the cause) and its
    last (what surfaced), else the last line.

    >>> cause("Traceback ...\nOSError: libcudart.so.11.0: cannot open\n\nDuring handling..."
    ...       "\nImportError: torch failed")
    'OSError: libcudart.so.11.0: cannot open -> ImportError: torch failed'
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    raised = [_whole(lines, i) for i, ln in enumerate(lines) if EXCEPTION_LINE.match(ln)]
    caused = CAUSED_BY.search(" ".join(lines))
    if caused and not any(caused.group(1) in r for r in raised[:-1]):
        return f"{caused.group(1)} -> {CAUSED_BY.sub('', raised[-1] if raised else lines[-1])}"
    if len(raised) > 1 and raised[0] != raised[-1]:
        return f"{raised[0]} -> {raised[-1]}"
    return (raised or lines or ["no output"])[-1]


def _whole(lines: list[str], at: int) -> str:
    """An exception line with the message that follows it ("ImportError:" alone, then
    the text on the next lines) as one."""
    line, rest = lines[at], []
    for following in lines[at + 1:]:
        if EXCEPTION_LINE.match(following) or following.startswith(("Traceback", "During ",
                                                                      "The above ")):
            break
        rest.append(following)
    return " ".join([line, *rest]) if line.endswith(":") and rest else line


def available_as_declared(node: Node, facts: dict) -> list[Finding]:
    torch = torch_facts(facts)
    if torch is None:
        return _no_torch(node, facts)
    if torch["cuda_available"] == (node.gpus > 0):
        return []
    if node.gpus == 0:
        return [Finding(node.name, "CUDA", "no GPU (gpus: 0 in cluster.yaml)",
                        f"torch sees {torch['device_count']} GPU(s)",
                        "declare the GPUs in cluster.yaml")]
    why = [f"torch {torch['version']}" + (" built without CUDA" if not torch["cuda_build"]
                                          else f" built for CUDA {torch['cuda_build']}")]
    gpu = facts.get("gpu") or {}
    why.append("nvidia-smi present" if gpu.get("nvidia_smi") else "no nvidia-smi")
    why.append(f"/dev: {' '.join(gpu['dev'])}" if gpu.get("dev") else "no /dev/nvidia*")
    if gpu.get("cuda_visible_devices") is not None:
        why.append(f"CUDA_VISIBLE_DEVICES={gpu['cuda_visible_devices']!r} in the login shell")
    return [Finding(node.name, "CUDA", f"CUDA available with {node.gpus} GPU(s)",
                    "torch.cuda.is_available() is False", "; ".join(why))]


def device_count(node: Node, facts: dict) -> list[Finding]:
    torch = torch_facts(facts)
    if torch is None:
        return _no_torch(node, facts)
    found = []
    if torch["device_count"] != node.gpus:
        found.append(Finding(node.name, "GPU count", f"{node.gpus} GPU(s) visible to torch",
                             f"{torch['device_count']}"))
    report = smi(facts)
    if report is not None and len(report["gpus"]) != node.gpus:
        found.append(Finding(node.name, "GPU count", f"{node.gpus} GPU(s) in nvidia-smi",
                             f"{len(report['gpus'])}" + (f" ({report['error']})"
                                                          if report.get("error") else "")))
    return found


def env_cuda(spec: EnvSpec) -> str | None:
    """major.minor of the env's CUDA pin (pytorch-cuda, cuda-version, cudatoolkit, ...)."""
    for name in CUDA_PACKAGES:
        for conda in spec.conda:
            if conda.name == name and conda.match.version is not None:
                found = re.search(r"(\d+)\.(\d+)", str(conda.match.version))
                if found:
                    return f"{found.group(1)}.{found.group(2)}"
    return None


def build_matches_env(node: Node, facts: dict, spec: EnvSpec) -> list[Finding]:
    torch = torch_facts(facts)
    wanted = env_cuda(spec)
    if node.gpus == 0 or wanted is None:
        return []  # no GPU expected, or the env pins no CUDA
    if torch is None:
        return _no_torch(node, facts)
    built = torch["cuda_build"]
    if built and ".".join(built.split(".")[:2]) == wanted:
        return []
    return [Finding(node.name, "torch CUDA build", f"torch built for CUDA {wanted} (env pin)",
                    f"torch {torch['version']} built for " + (f"CUDA {built}" if built else
                                                               "CPU only"))]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def driver_new_enough(node: Node, facts: dict, spec: EnvSpec) -> list[Finding]:
    report = smi(facts)
    torch = torch_facts(facts) or {}
    cuda = env_cuda(spec) or (".".join(torch["cuda_build"].split(".")[:2])
                              if torch.get("cuda_build") else None)
    if node.gpus == 0 or cuda is None:
        return []
    if report is None or not report.get("driver"):
        why = report.get("error") if report else "no nvidia-smi on the node"
        return [Finding(node.name, "NVIDIA driver", f"a driver for CUDA {cuda}", why)]
    need = MIN_DRIVER.get(cuda)
    if need is None or _version(report["driver"]) >= _version(need):
        return []
    compat = MINOR_COMPAT.get(cuda.split(".")[0])
    hint = (f"{report['driver']} runs CUDA {cuda} only through minor version compatibility "
            "(no PTX JIT)" if compat and _version(report["driver"]) >= _version(compat)
            else "upgrade the driver")
    return [Finding(node.name, "NVIDIA driver", f">= {need} for CUDA {cuda} "
                    "(NVIDIA release notes, Table 3)", report["driver"], hint)]


def gpus_healthy(node: Node, facts: dict) -> list[Finding]:
    report = smi(facts)
    if report is None:
        return []
    found = []
    for gpu in report["gpus"]:
        for key, what in (("retired_pending", "a page retirement pending"),
                          ("remapped_pending", "a row remap pending (reset the GPU)"),
                          ("remapped_failure", "a row remap failure (replace the GPU)")):
            if gpu.get(key):
                found.append(Finding(node.name, "GPU health", f"GPU {gpu['index']} "
                                     f"({gpu['uuid']}) healthy", what))
    return found


def stack_of(facts: dict) -> dict[str, str]:
    """What must be the same on every node: NCCL version, GPU models, driver."""
    torch = torch_facts(facts) or {}
    report = smi(facts) or {}
    models = Counter(g["name"] for g in report.get("gpus", ()))
    return {"NCCL": str(torch.get("nccl")),
            "GPU models": ", ".join(f"{n} x {m}" for m, n in sorted(models.items())) or "none",
            "driver": str(report.get("driver"))}


class Stacks:
    """Every usable node's stack and the cluster's tallies, computed once per run (per
    node it would be N x N: 4 million stack_of calls at 2,000 nodes)."""

    def __init__(self, cluster_facts: dict[str, dict]) -> None:
        self.reached = {n: stack_of(f) for n, f in
                        contract.usable(cluster_facts, "runtime", "gpu").items()}
        keys = next(iter(self.reached.values()), {})
        self.tallies = {key: Counter(s[key] for s in self.reached.values()).most_common()
                        for key in keys}


def _holding(reached: dict[str, dict], key: str, value: str) -> str:
    return str(NodeSet.fromlist([n for n, s in reached.items() if s[key] == value]))


def same_stack(node: Node, stacks: Stacks) -> list[Finding]:
    """Heterogeneity across nodes, by plurality; mixed models inside a node too."""
    found = []
    mine = stacks.reached.get(node.name, {})
    if mine.get("GPU models", "").count(" x ") > 1:
        found.append(Finding(node.name, "same GPUs", "one GPU model in the node",
                             mine["GPU models"]))
    for key, value in mine.items():
        tally = stacks.tallies[key]
        if sameness.standing(value, tally) is not None:
            others = "; ".join(f"{_holding(stacks.reached, key, v)}: {v}" for v, _ in tally)
            found.append(Finding(node.name, f"same {key} on every node", f"{key} {tally[0][0]}",
                                 value, others))
    return found
